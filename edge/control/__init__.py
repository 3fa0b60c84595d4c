"""From a tracked box to gimbal commands: pixel -> angle, then a rate controller with limits."""
