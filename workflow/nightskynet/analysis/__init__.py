"""What the stages measure and draw from their results: figures, and the network against the volunteers."""
