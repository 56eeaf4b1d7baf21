"""What a report knows beyond one run's facts, added to a built model in one
call by every front-end: inventory groups, fleet outliers within each group,
and the across-runs view from the history store (the run is recorded there
first, so first/last seen include it)."""
from . import history, outliers


def annotate_report(model, groups=None, history_target=None, outlier_threshold=None, fail_on_outlier=False):
    """groups: {host: [group, ...]} or None (hosts keep the groups their
    input carried); history_target: a SQLite path or postgresql:// DSN, or
    None; outlier_threshold: see outliers.parse_threshold. -> the model."""
    outliers.set_groups(model, groups or {})
    outliers.find_outliers(model, outliers.parse_threshold(outlier_threshold))
    model["summary"]["outliers"]["fail"] = bool(fail_on_outlier)
    if history_target:
        history.record_and_annotate(model, history_target)
    return model


def host_groups(inventory_groups):
    """{host: iterable of group names} with Ansible's implicit groups left out."""
    return {name: sorted(g for g in names if g not in outliers.IGNORED_GROUPS)
            for name, names in inventory_groups.items()}
