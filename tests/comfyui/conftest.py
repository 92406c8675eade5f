"""Tests against a real ComfyUI: the `comfy`, `make_comfy` and `object_info` fixtures live in tests/conftest.py
(tests/web uses them too, and one session server is shared)."""
