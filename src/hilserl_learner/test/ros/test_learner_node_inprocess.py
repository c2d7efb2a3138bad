"""learner_node in-process: configure fails cleanly (FAILURE, nothing started) on bad input."""
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture
def make_node(ros_domain):
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    nodes = []

    def make(**parameters):
        from rclpy.parameter import Parameter

        from hilserl_learner.nodes.learner_node import LearnerNode

        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        node = LearnerNode(context=context, parameter_overrides=overrides)
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        node.destroy_node()
    context.try_shutdown()


@pytest.mark.parametrize('parameters,reason', [
    ({'online_capacity': 0}, 'online_capacity'),
    ({'sac.discount': 1.5}, 'discount'),
    ({'encoder.freeze_trunk': True}, 'freeze_trunk'),
    ({'demo_dataset': '/data/demos'}, '/data/demos does not exist'),
    ({'camera_names': ['front'], 'online_capacity': 10_000_000}, 'max_buffer_memory_gb'),
])
def test_configure_fails_with_the_reason(make_node, tmp_path, parameters, reason, caplog):
    from rclpy.lifecycle import TransitionCallbackReturn

    node = make_node(run_dir=str(tmp_path), num_threads=1, **parameters)
    messages = []
    node.get_logger().error = lambda message, **_: messages.append(message)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.learner is None
    assert any(reason in message for message in messages), messages


def test_configure_activate_deactivate_cleanup(make_node, tmp_path):
    from rclpy.lifecycle import TransitionCallbackReturn

    node = make_node(run_dir=str(tmp_path), num_threads=1, state_dim=2, action_dim=1,
                     online_capacity=100, demo_capacity=10)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.learner.weights_for(0)[0].version == 1
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node._thread.is_alive()
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node._thread is None
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.learner is None
    assert (tmp_path / 'checkpoints' / 'latest').is_file()
