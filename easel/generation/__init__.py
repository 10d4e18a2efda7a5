"""Generation service: text-to-image, edit and inpaint through a configured engine."""
