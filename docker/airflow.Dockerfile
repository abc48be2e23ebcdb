# ShopStream's Airflow image for docker-compose.yaml: the official Airflow 3.3.2 image plus requirements.lock,
# so containers run the same pinned packages as the native .venv (scripts/bootstrap.sh). Only the runtime lock:
# the test and development tools of requirements-dev.lock stay out of the image. dags/, plugins/ and
# include/ are NOT copied: docker-compose.yaml mounts them (and .dockerignore keeps them out of the context).
# Build context: the repository root (docker compose build).
FROM apache/airflow:3.3.2-python3.11

# The lock pins apache-airflow==3.3.2 too; naming it again makes a lock/base mismatch fail the resolve instead
# of silently up- or downgrading the image's Airflow. The base image's extra providers (celery, redis, ...)
# stay as they are; every package the lock names ends up at the lock's version (checked below).
COPY requirements.lock /opt/shopstream/requirements.lock
RUN uv pip install --no-cache "apache-airflow==${AIRFLOW_VERSION}" -r /opt/shopstream/requirements.lock

USER root
COPY docker/airflow/container_env.py docker/airflow/check_lock.py docker/airflow/entrypoint.sh /opt/shopstream/
# config/, logs/ and dbt_docs/ are named volumes in docker-compose.yaml; a new named volume takes the owner of the
# image's folder, so creating them here (owned by airflow, group 0) lets every container run as the airflow user.
RUN chmod 0755 /opt/shopstream/entrypoint.sh \
 && chmod 0644 /opt/shopstream/container_env.py /opt/shopstream/check_lock.py \
 && ln -sf /opt/shopstream/entrypoint.sh /usr/local/bin/shopstream-env \
 && mkdir -p /opt/airflow/config /opt/airflow/logs /opt/airflow/dbt_docs \
 && chown airflow:0 /opt/airflow/config /opt/airflow/logs /opt/airflow/dbt_docs \
 && chmod 0775 /opt/airflow/config /opt/airflow/logs /opt/airflow/dbt_docs
USER airflow

RUN python /opt/shopstream/check_lock.py /opt/shopstream/requirements.lock

# Same as the base image, with ShopStream's connection rewrite in front of /entrypoint.
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/shopstream/entrypoint.sh"]
CMD []
