"""Writing, reading and repairing the demo episode bags (ROS-free: rosbags + mcap).

- ``installed_typestore()``: message definitions of the installed packages (``.msg`` files in
  their ament share directories) for writing: the schemas embedded in the bags and the RIHS01
  type hashes in metadata.yaml are the ones ROS computes (a test compares them).
- ``EpisodeBagWriter``: one episode's rosbag2 directory, written incrementally with
  ``rosbags.rosbag2.Writer`` (MCAP storage, zstd chunks). ``flush()`` closes the pending chunk
  and hands it to the OS, so a killed process loses at most what came after the last flush.
- ``read_messages(directory)``: every message of an episode, deserialized with the
  definitions embedded in the bag (no installed hilserl_msgs needed).
- ``repair_episode(directory)``: rebuilds a bag whose writer died (no summary, no
  metadata.yaml) from the chunks that reached the disk.
"""
import contextlib
import pathlib
import shutil
import time

from hilserl_learner import demo_format as fmt
from hilserl_learner.errors import DatasetError, DemoWriteError

TYPE_PACKAGES = ('builtin_interfaces', 'std_msgs', 'geometry_msgs', 'sensor_msgs',
                 'hilserl_msgs')
"""Packages whose .msg definitions the recorded types use."""


def installed_typestore(packages=TYPE_PACKAGES):
    """A rosbags typestore holding the installed .msg definitions of ``packages``.

    Packages missing from the ament index fall back to rosbags' built-in ROS 2 Kilted
    definitions (identical for the standard packages); hilserl_msgs must be installed.
    """
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    builtin = get_typestore(Stores.ROS2_KILTED)
    typestore = get_typestore(Stores.EMPTY)
    types = {}
    for package in packages:
        try:
            share = pathlib.Path(get_package_share_directory(package))
        except (PackageNotFoundError, ValueError, LookupError):
            if package == 'hilserl_msgs':
                raise DemoWriteError('hilserl_msgs is not installed (source the workspace)'
                                     ) from None
            types.update({k: v for k, v in builtin.fielddefs.items()
                          if k.startswith(f'{package}/')})
            continue
        for path in sorted((share / 'msg').glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'{package}/msg/{path.stem}'))
    typestore.register(types)
    return typestore


def _qos(kind: str):
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    history, depth, reliability, durability = {
        'reliable': (QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE),
        'keep_all': (QosHistory.KEEP_ALL, 1000, QosReliability.RELIABLE,
                     QosDurability.VOLATILE),
        'latched': (QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                    QosDurability.TRANSIENT_LOCAL),
        'sensor': (QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT,
                   QosDurability.VOLATILE),
    }[kind]
    zero = QosTime(0, 0)
    return Qos(history, depth, reliability, durability, zero, zero, QosLiveliness.AUTOMATIC,
               zero, False)


class EpisodeBagWriter:
    """One episode's rosbag2 directory (MCAP storage), written message by message.

    Errors: ``OSError`` (a full disk: ENOSPC) passes through unchanged; anything rosbags
    rejects becomes ``DemoWriteError``. After an error call ``abort()``.
    """

    def __init__(self, directory: pathlib.Path, typestore, compression: str = 'zstd'):
        if compression not in ('zstd', 'none'):
            raise ValueError(f"compression must be 'zstd' or 'none', got {compression!r}")
        self.directory = pathlib.Path(directory)
        self.typestore = typestore
        self.compression = compression
        self.counts: dict[str, int] = {}
        self._connections = {}
        self._writer = None
        self.bytes_written = 0

    def open(self) -> None:
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
        from rosbags.rosbag2.errors import WriterError

        try:
            self._writer = Writer(self.directory, version=9, storage_plugin=StoragePlugin.MCAP)
            if self.compression == 'zstd':
                self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
            self._writer.open()
        except WriterError as error:
            self._writer = None
            raise DemoWriteError(f'cannot create bag {self.directory}: {error}') from error

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    @property
    def bag_file(self) -> pathlib.Path:
        return self.directory / f'{self.directory.name}.mcap'

    def write(self, topic: fmt.TopicSpec, timestamp_ns: int, data: bytes) -> None:
        """Append one CDR-serialized message of ``topic`` received at ``timestamp_ns``."""
        from rosbags.rosbag2.errors import WriterError

        if self._writer is None:
            raise DemoWriteError(f'bag {self.directory} is not open')
        try:
            connection = self._connections.get(topic.name)
            if connection is None:
                connection = self._writer.add_connection(
                    topic.name, topic.msgtype, typestore=self.typestore,
                    offered_qos_profiles=[_qos(topic.qos)])
                self._connections[topic.name] = connection
            self._writer.write(connection, int(timestamp_ns), data)
        except (WriterError, KeyError) as error:
            raise DemoWriteError(f'{topic.name}: {error}') from error
        self.counts[topic.name] = self.counts.get(topic.name, 0) + 1
        self.bytes_written += len(data)

    def flush(self) -> None:
        """Close the pending MCAP chunk and hand everything written so far to the OS."""
        storage = getattr(self._writer, 'storage', None)
        chunk = getattr(storage, 'chunk', None)
        if chunk is None:
            return
        if chunk.bio.tell() and hasattr(storage, 'close_chunk'):
            storage.close_chunk()
        storage.bio.flush()

    def close(self, custom_data: dict[str, str]) -> None:
        """Write the summary and metadata.yaml (with ``custom_data``); the bag is complete."""
        from rosbags.rosbag2.errors import WriterError

        if self._writer is None:
            raise DemoWriteError(f'bag {self.directory} is not open')
        for key, value in custom_data.items():
            self._writer.set_custom_data(key, value)
        try:
            self._writer.close()
        except WriterError as error:
            raise DemoWriteError(f'closing {self.directory}: {error}') from error
        finally:
            self._writer = None

    def abort(self, remove: bool = True) -> None:
        """Stop writing (after an error or a discard); ``remove`` deletes the directory."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):  # already failed: only release the file
                writer.abort()
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


# --- reading --------------------------------------------------------------------------------
def read_messages(directory: pathlib.Path, topics=None):
    """Yield ``(topic, timestamp_ns, message)`` of an episode bag in log-time order.

    Messages are deserialized with the bag's embedded definitions (rosbags); ``topics``
    restricts them to a set of names. DatasetError if the bag cannot be read.
    """
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.rosbag2.errors import ReaderError

    directory = pathlib.Path(directory)
    try:
        with AnyReader([directory]) as reader:
            connections = [c for c in reader.connections
                           if topics is None or c.topic in topics]
            for connection, timestamp, raw in reader.messages(connections=connections):
                yield connection.topic, timestamp, reader.deserialize(raw, connection.msgtype)
    except (AnyReaderError, ReaderError, OSError) as error:
        raise DatasetError(f'cannot read bag {directory}: {error}') from error


# --- repair after a crash -------------------------------------------------------------------
def _salvage_mcap(path: pathlib.Path):
    """Schemas, channels and messages of an MCAP file that may end mid-record."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas, channels, messages = {}, {}, []
    with open(path, 'rb') as stream:
        reader = StreamReader(stream, record_size_limit=1 << 30)
        try:
            for record in reader.records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    messages.append(record)
        except (McapError, EOFError, ValueError, OSError, MemoryError):
            pass  # the tail the dead writer did not finish
    return schemas, channels, messages


def repair_episode(directory: pathlib.Path, end_reason: str = 'crash') -> fmt.EpisodeInfo | None:
    """Rebuild an episode a killed recorder left without summary and metadata.yaml.

    Every complete chunk is kept; the episode is labelled ``interrupted`` (``end_reason``).
    Returns its new sidecar, or None (and deletes the directory) if nothing was readable.
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    directory = pathlib.Path(directory)
    info = fmt.read_sidecar(directory) or fmt.EpisodeInfo(
        index=int(fmt.EPISODE_DIR_PATTERN.match(directory.name).group(1)))
    files = sorted(directory.glob('*.mcap'))
    schemas, channels, messages = _salvage_mcap(files[0]) if files else ({}, {}, [])
    messages = [m for m in messages if m.channel_id in channels
                and channels[m.channel_id].schema_id in schemas]
    if not messages:
        shutil.rmtree(directory)
        return None
    typestore = get_typestore(Stores.EMPTY)
    for schema in schemas.values():
        typestore.register(get_types_from_msg(schema.data.decode(), schema.name))
    specs = {cid: fmt.TopicSpec(c.topic, schemas[c.schema_id].name,
                                _qos_kind_of(c.topic)) for cid, c in channels.items()}
    staging_root = directory.with_name(f'.{directory.name}.repair')
    shutil.rmtree(staging_root, ignore_errors=True)
    staging_root.mkdir()
    staging = staging_root / directory.name  # the bag file is named after its directory
    writer = EpisodeBagWriter(staging, typestore)
    writer.open()
    stats = _RepairStats()
    try:
        for message in sorted(messages, key=lambda m: m.log_time):
            spec = specs[message.channel_id]
            writer.write(spec, message.log_time, message.data)
            stats.add(spec, message.data, typestore)
        info.label, info.end_reason = fmt.LABEL_INTERRUPTED, end_reason
        info.error = info.error or 'recorder killed while recording; repaired from the disk'
        info.length, info.intervention_steps = stats.length, stats.intervention_steps
        info.message_counts = dict(writer.counts)
        info.duration_s = (messages[-1].log_time - messages[0].log_time) / 1e9
        writer.close(info.custom_data())
        fmt.write_sidecar(staging, info)
    except BaseException:
        writer.abort()
        shutil.rmtree(staging_root, ignore_errors=True)
        raise
    trash = directory.with_name(f'.{directory.name}.crashed-{time.time_ns()}')
    directory.rename(trash)
    staging.rename(directory)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging_root, ignore_errors=True)
    return info


def _qos_kind_of(topic: str) -> str:
    for spec in fmt.RECORDED_TOPICS:
        if spec.name == topic:
            return spec.qos
    return 'sensor' if fmt.camera_of_topic(topic) else 'reliable'


class _RepairStats:
    def __init__(self):
        self.length = 0
        self.intervention_steps = 0

    def add(self, spec: fmt.TopicSpec, data: bytes, typestore) -> None:
        if spec.name != fmt.TRANSITIONS:
            return
        self.length += 1
        message = typestore.deserialize_cdr(data, spec.msgtype)
        self.intervention_steps += int(bool(message.is_intervention))
