"""Developer tools for running and testing the payments backend locally."""
