"""Sub-commands of ``dav2`` (see ``dav2_ros.cli``)."""
