"""Benchmark of virtual-entities-generator (not a test): 250 cities without
stops in hub mode = 250 virtual stops, 500 routes, 365,000 flights, generated
and committed by the real worker, compared with `psql \\copy` of the same rows
in one transaction. Needs the stack (bash deploy/stack.sh up) and a build:

    TG_BUILD_DIR=build-virtual python3 services/virtual-entities-generator/bench/bench.py [runs]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "integration"))
from conftest import Stack, envelope  # noqa: E402

N_CITIES = 250


def directory(path):
    with open(path, "w", encoding="utf-8") as f:
        f.write("name,district,latitude,longitude,population\n")
        f.write("Якутск,городской округ Якутск,62.0272,129.7319,355400\n")
        for i in range(N_CITIES):  # a deterministic spread over Yakutia
            f.write(f"Посёлок {i + 1},Тестовый улус,{56 + (i * 7919) % 1600 / 100:.4f},"
                    f"{106 + (i * 104729) % 5400 / 100:.4f},\n")


def run_worker(stack, cities):
    version = int(stack.scalar("INSERT INTO datasets (data_hash) VALUES (repeat('b', 64)) "
                               "RETURNING version"))
    stack.sql(f"INSERT INTO stops (dataset_version, id, name, city_name, latitude, longitude) "
              f"VALUES ({version}, 'stop-yak', 'Автовокзал', 'Якутск', 62.03, 129.717)")
    stack.start("virtual-entities-generator", env={"CITIES_FILE": cities, "LOG_LEVEL": "info"})
    t0 = time.monotonic()
    stack.produce("pipeline.odata-sync.completed",
                  envelope("odata-sync.completed", {"status": "success"}, dataset_version=version))
    [msg] = stack.consume("pipeline.virtual-entities.completed", count=1, timeout=120)
    wall = time.monotonic() - t0
    p = msg["json"]["payload"]
    assert (p["virtualStops"], p["virtualRoutes"], p["virtualFlights"]) == (250, 500, 365000), p
    return version, p["executionTimeMs"] / 1000, wall


def psql_copy(stack, version, tmp):
    """Exports the generated rows, then loads them as a new version with \\copy."""
    tables = {"virtual_stops": "true", "virtual_routes": "true", "flights": "is_virtual"}
    for t, where in tables.items():
        subprocess.run(["psql", stack.database_url, "-qXc",
                        f"\\copy (SELECT * FROM {t} WHERE dataset_version = {version} AND {where})"
                        f" TO '{tmp}/{t}.tsv'"], check=True)
    copy_version = int(stack.scalar("INSERT INTO datasets (data_hash) VALUES (repeat('c', 64)) "
                                    "RETURNING version"))
    script = os.path.join(tmp, "load.sql")
    with open(script, "w") as f:
        for t in tables:
            subprocess.run(["sed", "-i", f"s/^{version}\\t/{copy_version}\\t/", f"{tmp}/{t}.tsv"],
                           check=True)
            f.write(f"\\copy {t} FROM '{tmp}/{t}.tsv'\n")
    t0 = time.monotonic()
    subprocess.run(["psql", stack.database_url, "-qX1", "-v", "ON_ERROR_STOP=1", "-f", script],
                   check=True)
    return time.monotonic() - t0


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for run in range(runs):
        stack = Stack()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cities = os.path.join(tmp, "cities.csv")
                directory(cities)
                version, step_s, wall_s = run_worker(stack, cities)
                copy_s = psql_copy(stack, version, tmp)
            print(f"run {run + 1}: worker step {step_s:.2f} s (event to event {wall_s:.2f} s); "
                  f"psql \\copy of the same rows {copy_s:.2f} s; ratio {step_s / copy_s:.2f}")
        finally:
            stack.close()


if __name__ == "__main__":
    main()
