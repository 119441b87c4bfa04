"""Statements for the hot batches (a bulk request's items, actions, steps and audit entries).

Django's `bulk_update` (and an `update()` with `Case(When(...))`) builds and resolves one
expression per row and field: for a batch of 20 that was a fifth of a bulk request's CPU per
command. `update_each` writes the same statement as text, the values through each field's own
`get_db_prep_save` (so a UUID, a date or a JSON value reaches SQLite and PostgreSQL as Django
would send it), in one round trip.

`bulk_create` prepares every field of every row (a bulk's actions have 30 columns, nearly all
the same for the whole batch). `insert_all` prepares a column once when every row has the same
value in it, and sends the others as one array each (PostgreSQL's unnest).
"""

from __future__ import annotations

from django.db import connections, router


def update_each(model, values: dict, *, field: str, same: dict | None = None, where: dict | None = None) -> int:
    """UPDATE `model` SET `field` = values[pk] (and each of `same`) WHERE pk IN values (AND each of `where` equals).

    Answers how many rows changed. `same` and `where` hold plain values (None: SQL NULL / IS NULL).
    """
    if not values:
        return 0
    using = router.db_for_write(model)
    connection = connections[using]
    meta = model._meta
    quote = connection.ops.quote_name
    pk = meta.pk
    target = meta.get_field(field)

    def prep(name_or_field, value):
        f = meta.get_field(name_or_field) if isinstance(name_or_field, str) else name_or_field
        return f.get_db_prep_save(value, connection)

    cases, params = [], []
    for key, value in values.items():
        cases.append("WHEN %s THEN %s")
        params += [prep(pk, key), prep(target, value)]

    def pairs(mapping: dict, null: str) -> list[str]:
        # `column = %s` for each (its value prepared by its field), or `null` for None.
        out = []
        for name, value in mapping.items():
            f = meta.get_field(name)
            if value is None:
                out.append(f"{quote(f.column)} {null}")
            else:
                out.append(f"{quote(f.column)} = %s")
                params.append(prep(f, value))
        return out

    assignments = [f"{quote(target.column)} = CASE {quote(pk.column)} {' '.join(cases)} END", *pairs(same or {}, "= NULL")]
    keys = list(values)
    conditions = [f"{quote(pk.column)} IN ({', '.join(['%s'] * len(keys))})"]
    params += [prep(pk, key) for key in keys]
    conditions += pairs(where or {}, "IS NULL")
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)}"  # noqa: S608 (our names; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_all(objs: list, *, ignore_conflicts: bool = False) -> None:
    """INSERT unsaved `objs` (one model) in one statement, as `bulk_create(objs)` would, minus the
    per-value work where a column holds one value for every row; no RETURNING, so an
    auto-incremented pk stays None on the objects (a pk given by a default, a UUID, is set).
    `ignore_conflicts`: rows that would break a unique constraint are skipped, as bulk_create's.

    PostgreSQL only (unnest); elsewhere it is `bulk_create`. Fields with `auto_now`/`auto_now_add`
    are filled as Django's save would. Signals are not sent (bulk_create sends none either)."""
    if not objs:
        return
    model = type(objs[0])
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model._base_manager.using(using).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    quote = connection.ops.quote_name
    columns, selected, params, arrays, array_params = [], [], [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and getattr(objs[0], f.attname) is None:
            continue  # the database numbers it
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            values = [f.pre_save(obj, add=True) for obj in objs]
        else:
            attname = f.attname
            values = [getattr(obj, attname) for obj in objs]
        first = values[0]
        columns.append(quote(f.column))
        cast = f.cast_db_type(connection)
        if all(v == first for v in values):
            selected.append(f"%s::{cast}")
            params.append(f.get_db_prep_save(first, connection))
        else:
            selected.append(f"u.c{len(arrays)}")
            arrays.append(f"%s::{cast}[]")
            array_params.append([f.get_db_prep_save(v, connection) for v in values])
    if arrays:
        source = f"FROM unnest({', '.join(arrays)}) AS u({', '.join(f'c{i}' for i in range(len(arrays)))})"
    else:
        source = "FROM generate_series(1, %s)"
        array_params = [len(objs)]
    conflicts = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(selected)} {source}{conflicts}"  # noqa: S608 (our names; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params + array_params)
    for obj in objs:
        obj._state.adding, obj._state.db = False, using
