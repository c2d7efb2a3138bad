"""The only mapping between hilserl_msgs and the learner's core types.

Images are rgb8 ``sensor_msgs/Image`` (uint8 HxWx3); they are viewed with ``np.frombuffer``
and copied once into the replay buffer. Structural problems (wrong encoding, a data size that
does not match height x step, camera names that do not match the images) raise
``InvalidTransitionError`` like every other validation failure, so the node counts them.
"""
import array

import numpy as np
from sensor_msgs.msg import Image

from hilserl_learner.errors import InvalidTransitionError
from hilserl_learner.observation import Observation, Transition
from hilserl_msgs.msg import LearnerStats
from hilserl_msgs.msg import Observation as ObservationMsg
from hilserl_msgs.msg import Transition as TransitionMsg


def image_to_array(image: Image, name: str) -> np.ndarray:
    """A read-only (H, W, 3) uint8 view of an rgb8 image."""
    if image.encoding != 'rgb8':
        raise InvalidTransitionError('image_encoding',
                                     f'image {name} is {image.encoding!r}, expected rgb8')
    height, width, step = image.height, image.width, image.step
    if step < width * 3 or len(image.data) != height * step:
        raise InvalidTransitionError(
            'image_size', f'image {name}: {len(image.data)} bytes for {height}x{width} '
            f'with step {step}')
    data = np.frombuffer(image.data, np.uint8).reshape(height, step)
    return data[:, :width * 3].reshape(height, width, 3)


def array_to_image(frame: np.ndarray) -> Image:
    frame = np.ascontiguousarray(frame, np.uint8)
    height, width = frame.shape[:2]
    image = Image(height=height, width=width, encoding='rgb8', step=width * 3)
    image.data = array.array('B', frame.tobytes())
    return image


def observation_from_msg(msg: ObservationMsg) -> Observation:
    if len(msg.camera_names) != len(msg.images):
        raise InvalidTransitionError(
            'camera_names', f'{len(msg.camera_names)} camera names for {len(msg.images)} images')
    if len(set(msg.camera_names)) != len(msg.camera_names):
        raise InvalidTransitionError(
            'camera_names', f'a camera name appears twice: {list(msg.camera_names)}')
    return Observation(
        state=np.asarray(msg.state, np.float32),
        images={name: image_to_array(image, name)
                for name, image in zip(msg.camera_names, msg.images)},
        privileged=np.asarray(msg.privileged_state, np.float32))


def observation_to_msg(obs: Observation, state_names=(), privileged_names=()) -> ObservationMsg:
    msg = ObservationMsg()
    msg.state_names = list(state_names)
    msg.state = np.asarray(obs.state, np.float32).tolist()
    msg.camera_names = list(obs.images)
    msg.images = [array_to_image(frame) for frame in obs.images.values()]
    msg.privileged_names = list(privileged_names)
    msg.privileged_state = np.asarray(obs.privileged, np.float32).tolist()
    return msg


def transition_from_msg(msg: TransitionMsg) -> Transition:
    return Transition(
        observation=observation_from_msg(msg.observation),
        action=np.asarray(msg.action, np.float32),
        reward=float(msg.reward),
        next_observation=observation_from_msg(msg.next_observation),
        terminated=bool(msg.terminated), truncated=bool(msg.truncated),
        is_intervention=bool(msg.is_intervention),
        gripper_penalty=float(msg.gripper_penalty),
        episode_id=int(msg.episode_id), step_index=int(msg.step_index),
        source=msg.header.frame_id)


def transition_to_msg(transition: Transition) -> TransitionMsg:
    msg = TransitionMsg(
        episode_id=int(transition.episode_id), step_index=int(transition.step_index),
        reward=float(transition.reward), terminated=bool(transition.terminated),
        truncated=bool(transition.truncated), is_intervention=bool(transition.is_intervention),
        gripper_penalty=float(transition.gripper_penalty))
    msg.header.frame_id = transition.source
    msg.observation = observation_to_msg(transition.observation)
    msg.next_observation = observation_to_msg(transition.next_observation)
    msg.action = np.asarray(transition.action, np.float32).tolist()
    return msg


_LOSS_FIELDS = ('critic_loss', 'actor_loss', 'temperature', 'temperature_loss', 'mean_q',
                'entropy')


def stats_to_msg(stats: dict, updates_per_s: float, transitions_per_s: float) -> LearnerStats:
    losses = stats['losses']
    msg = LearnerStats(
        policy_version=stats['policy_version'], updates=stats['updates'],
        actor_updates=stats['actor_updates'], updates_per_s=float(updates_per_s),
        online_buffer_size=stats['online_buffer_size'],
        demo_buffer_size=stats['demo_buffer_size'], buffer_bytes=stats['buffer_bytes'],
        transitions_per_s=float(transitions_per_s),
        transitions_received=stats['transitions_received'],
        transitions_rejected=stats['transitions_rejected'],
        transitions_dropped=stats['transitions_dropped'], training=bool(stats['training']),
        gripper_critic_loss=float(losses.get('gripper_critic_loss', float('nan'))))
    for name in _LOSS_FIELDS:
        setattr(msg, name, float(losses.get(name, float('nan'))))
    extra = {k: v for k, v in losses.items() if k not in _LOSS_FIELDS
             and k != 'gripper_critic_loss'}
    extra.update(checkpoints_skipped=stats['checkpoints_skipped'],
                 checkpoints_failed=stats['checkpoints_failed'],
                 nonfinite_steps=stats['nonfinite_steps'])
    msg.extra_names = list(extra)
    msg.extra_values = [float(v) for v in extra.values()]
    return msg
