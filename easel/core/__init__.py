"""What every service shares: settings, errors, images, HTTP edge, logging, metrics."""
