"""Airflow's ``[core] hostname_callable`` for ``make demo-distributed`` and the ``distributed`` test.

All the demo's Celery workers run on this one machine, so the hostname Airflow records on each task instance
(``socket.getfqdn()`` by default) would be the same for all of them. Each worker is started with
``SP_REPORTS_DEMO_WORKER`` naming it, and the task instances it runs record that name instead. On real
machines the default is what you want: leave ``hostname_callable`` alone.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("SP_REPORTS_DEMO_WORKER") or socket.getfqdn()
