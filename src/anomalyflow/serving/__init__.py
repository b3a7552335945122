"""The BentoML service that scores production traffic, and what starts it."""
