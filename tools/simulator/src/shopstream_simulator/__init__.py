"""The simulator: a seeded social-commerce world played through the services real interfaces."""
