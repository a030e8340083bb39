"""Streaming Emformer transducer for ESPnet: encoder, predictor/joiner model, search and inference."""
