"""Deploying to Google Cloud: the one-time setup script and the files `gcloud run deploy` reads."""
