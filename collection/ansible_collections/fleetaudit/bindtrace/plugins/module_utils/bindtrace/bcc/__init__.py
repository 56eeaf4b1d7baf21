"""The bcc fallback, for hosts whose kernel has no BTF: backend (load, run,
self-test), program (the C text bcc compiles on the host) and calibrate (the
struct offsets of the running kernel, found by searching for known values)."""
