# ShopStream's Superset image for docker-compose.yaml (the `superset` service): Python 3.11 plus
# requirements-bi.lock, the same pinned set as the native .venv-bi (scripts/superset.sh). Superset's config, the
# provisioning script and the dashboards as code (include/superset/) and plugins/ are mounted, not copied.
# Build context: the repository root (docker compose build).
FROM python:3.11-slim-bookworm

COPY requirements-bi.lock /opt/shopstream/requirements-bi.lock
RUN pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r /opt/shopstream/requirements-bi.lock

# The loopback-to-service rewrite of the connections is the Airflow image's (docker/airflow/container_env.py).
COPY docker/airflow/container_env.py docker/superset/entrypoint.sh /opt/shopstream/
RUN chmod 0644 /opt/shopstream/container_env.py && chmod 0755 /opt/shopstream/entrypoint.sh \
 && useradd --create-home --uid 50000 superset && mkdir -p /var/lib/superset && chown superset /var/lib/superset
USER superset
ENV SHOPSTREAM_ROOT=/opt/shopstream SUPERSET_HOME=/var/lib/superset \
    SUPERSET_CONFIG_PATH=/opt/shopstream/include/superset/superset_config.py FLASK_APP=superset
EXPOSE 8088
ENTRYPOINT ["/opt/shopstream/entrypoint.sh"]
