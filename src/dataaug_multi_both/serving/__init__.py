"""Using a trained model: loading it from a checkpoint, a study or an export; predicting on
new posts; exporting it as a self-contained directory."""
