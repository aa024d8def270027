"""The depth node (``node``: the only owner of ROS handles) and the plain logic it wires:
message conversions, camera_info, parameters, start-up, outputs, diagnostics, QoS, mailbox."""
