"""Model versions and stages over the BentoML model store: register, promote, roll back."""
