"""`python -m services.scheduling`: the scheduling service as a process."""

from services.scheduling.app import create_service
from shared.runtime.process import run_service

if __name__ == "__main__":
    run_service(create_service)
