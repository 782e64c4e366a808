"""`python -m services.inventory`: the inventory service as a process."""

from services.inventory.app import create_service
from shared.runtime.process import run_service

if __name__ == "__main__":
    run_service(create_service)
