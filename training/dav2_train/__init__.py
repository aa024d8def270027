"""Training package for dav2_ros: synthetic teacher → pseudo-labels → student."""
