"""Demo recording core (ROS-free): episodes from the actor's streams, one rosbag2 each.

``recorder.DemoRecorder`` splits the message streams into episodes and writes them with
``hilserl_learner.bag_io.EpisodeBagWriter``; ``frames.RawFrameMatcher`` keeps the raw camera
frames that policy images were cropped from; ``episode.OpenEpisode`` is one bag being written.
The format is ``hilserl_learner.demo_format``; ``nodes/demo_recorder_node.py`` is the ROS side.
"""
