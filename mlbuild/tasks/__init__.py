"""The library's release tasks: evaluation with gates, publishing, images, acceptance."""
