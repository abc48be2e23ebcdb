"""Airflow's local settings for ShopStream (scripts/airflow.sh links it into $AIRFLOW_HOME/config/).

Airflow imports this module once at start-up in every process. Here it preloads the modules every task would
import (shopstream.preload explains why), in the scheduler and the DAG processor only.
"""

from shopstream.preload import preload_for_forking_command

preload_for_forking_command()
