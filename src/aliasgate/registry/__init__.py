"""Registering candidates as MLflow model versions and managing their aliases."""
