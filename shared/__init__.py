"""The project's shared package: event contracts, the CloudEvents envelope and the service runtime."""
