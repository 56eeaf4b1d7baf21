"""Container names a test uses: removed before it (a run cut short may have
left one) and after it."""


def container_names(remove):
    """Generator body of a pytest fixture: yields use(name) -> name."""
    used = []

    def use(name):
        remove(name)
        used.append(name)
        return name
    yield use
    if used:
        remove(*used)
