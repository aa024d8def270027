"""ROS 2 wiring of the depth node: conversions, parameters, QoS, diagnostics, mailbox, node."""
