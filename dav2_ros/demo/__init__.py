"""The end-to-end demo: synthetic camera node, monitor node, orchestrator (`dav2 demo`)."""
