"""dav2_ros: monocular metric depth for ROS 2 with Depth Anything V2."""

__version__ = "0.1.0"
