#!/usr/bin/env bash
# The superset service's start (docker-compose.yaml), the container's `scripts/superset.sh start`: rewrite the
# connections of .env for the compose network (docker/airflow/container_env.py), migrate the metadata database,
# sync roles, create the admin login and import the dashboards as code (include/superset/provision.py), then
# serve with gunicorn on port 8088.
set -euo pipefail
eval "$(python /opt/shopstream/container_env.py exports)"
python /opt/shopstream/include/superset/provision.py --init
exec gunicorn --bind 0.0.0.0:8088 --workers 1 --worker-class gthread --threads 8 --timeout 120 \
  --limit-request-line 0 --limit-request-field_size 0 "superset.app:create_app()"
