"""Decimated render meshes for fast software rendering, cached on disk.

The official SO-101 STL meshes hold about 322 k triangles; rendering them with a software
OpenGL (Mesa llvmpipe) costs tens of milliseconds per 128x128 frame. The simulation renders
coarse copies instead (vertex clustering on a millimetre grid, then quadric decimation);
collision keeps the original meshes, whose convex hulls MuJoCo uses anyway. Decimation runs
once per mesh file and setting, and the result is cached under
``$XDG_CACHE_HOME/hilserl/meshes`` (default ``~/.cache/hilserl/meshes``) in a file named by the
SHA-256 of the STL bytes and the settings, so a changed STL never reuses a stale cache entry.
"""
import hashlib
import os
import pathlib
import tempfile

import numpy as np

CACHE_VERSION = 1
_STL_HEADER_BYTES = 80
_STL_TRIANGLE = np.dtype([('normal', '<f4', 3), ('vertices', '<f4', (3, 3)), ('attr', '<u2')])


def cache_dir() -> pathlib.Path:
    base = os.environ.get('XDG_CACHE_HOME') or str(pathlib.Path.home() / '.cache')
    return pathlib.Path(base) / 'hilserl' / 'meshes'


def read_binary_stl(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (n, 3) float64 and triangles (m, 3) int64 of a binary STL, duplicates merged."""
    if len(data) < _STL_HEADER_BYTES + 4:
        raise ValueError('not a binary STL: file too short')
    count = int(np.frombuffer(data, '<u4', 1, _STL_HEADER_BYTES)[0])
    expected = _STL_HEADER_BYTES + 4 + count * _STL_TRIANGLE.itemsize
    if len(data) != expected:
        raise ValueError(f'not a binary STL: {len(data)} bytes, expected {expected} '
                         f'for {count} triangles')
    triangles = np.frombuffer(data, _STL_TRIANGLE, count, _STL_HEADER_BYTES + 4)
    corners = triangles['vertices'].reshape(-1, 3).astype(np.float64)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    faces = inverse.reshape(-1, 3).astype(np.int64)
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (
        faces[:, 0] != faces[:, 2])
    return vertices, faces[keep]


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray,
                     voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Weld all vertices inside each ``voxel_m`` grid cell into their mean (vertex clustering).

    Robust on CAD meshes full of long thin triangles, where quadric decimation stalls (it stops
    at about a third of the official SO-101 meshes' triangles). Collapsed and duplicate
    triangles are dropped.
    """
    cells = np.floor(vertices / voxel_m).astype(np.int64)
    _, cluster = np.unique(cells, axis=0, return_inverse=True)
    cluster = cluster.reshape(-1)
    sizes = np.bincount(cluster)
    welded = np.stack([np.bincount(cluster, vertices[:, i]) for i in range(3)], 1)
    welded /= sizes[:, None]
    mapped = cluster[faces]
    keep = (mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (
        mapped[:, 0] != mapped[:, 2])
    mapped = mapped[keep]
    _, first = np.unique(np.sort(mapped, axis=1), axis=0, return_index=True)
    return welded, mapped[np.sort(first)]


def decimated_mesh(stl_path: pathlib.Path, voxel_m: float, reduction: float,
                   directory: pathlib.Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a coarse render copy of the binary STL ``stl_path``.

    Vertices are first welded on a ``voxel_m`` grid (0: skip), then quadric decimation
    (fast-simplification) removes about ``reduction`` of the remaining triangles (0: skip).
    Results are cached on disk.
    """
    if not 0.0 <= reduction < 1.0:
        raise ValueError(f'reduction must be in [0, 1), got {reduction}')
    if not 0.0 <= voxel_m <= 0.01:
        raise ValueError(f'voxel_m must be in [0, 0.01] m, got {voxel_m}')
    data = pathlib.Path(stl_path).read_bytes()
    settings = f'|{voxel_m:.6f}|{reduction:.6f}|v{CACHE_VERSION}'
    key = hashlib.sha256(data + settings.encode()).hexdigest()
    folder = directory or cache_dir()
    cached = folder / f'{key[:32]}.npz'
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                return stored['vertices'], stored['faces']
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    vertices, faces = read_binary_stl(data)
    if voxel_m > 0.0:
        vertices, faces = cluster_vertices(vertices, faces, voxel_m)
    if reduction > 0.0 and len(faces) > 200:
        import fast_simplification

        vertices, faces = fast_simplification.simplify(
            vertices.astype(np.float32), faces, target_reduction=reduction)
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
    _store(folder, cached, vertices, faces)
    return vertices, faces


def _store(folder: pathlib.Path, path: pathlib.Path, vertices, faces) -> None:
    """Write atomically, so concurrent processes never read a half-written file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix='.npz.tmp')
        with os.fdopen(handle, 'wb') as stream:
            np.savez(stream, vertices=vertices, faces=faces)
        os.replace(temporary, path)
    except OSError:
        pass  # no writable cache: decimate again next time
