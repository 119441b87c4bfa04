"""The database cache behind CACHES["shared"] when no Redis URL is set, one statement per write.

Django's DatabaseCache counts the whole table (`SELECT COUNT(*)`) and then reads, updates or
inserts in a transaction on every `set`: five statements, and a full count of the table, for
each partner API request the throttle counts. Here `set` is one upsert (`INSERT … ON CONFLICT
(cache_key) DO UPDATE`, SQLite ≥ 3.24 and PostgreSQL) and nothing is culled on the way: the
keys kept here are re-used ones (one throttle count per API token), so the table stays as
small as the number of tokens. Reads, `add`, `delete`, `clear` and expiry are Django's.
"""

from __future__ import annotations

import base64
import pickle
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router


class UpsertDatabaseCache(DatabaseCache):
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        # As DatabaseCache does: a naive datetime.max for "forever", else aware UTC (naive without USE_TZ).
        expires = datetime.max if timeout is None else datetime.fromtimestamp(timeout, tz=UTC if settings.USE_TZ else None)
        expires = expires.replace(microsecond=0)
        connection = connections[router.db_for_write(self.cache_model_class)]
        table = connection.ops.quote_name(self._table)
        value = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO {table} ("cache_key", "value", "expires") VALUES (%s, %s, %s) '  # noqa: S608 - the table name is ours
                'ON CONFLICT ("cache_key") DO UPDATE SET "value" = excluded."value", "expires" = excluded."expires"',
                [key, value, connection.ops.adapt_datetimefield_value(expires)],
            )
