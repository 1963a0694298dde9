import Hummingbird
import Logging
import Sandbox
import ServiceLifecycle
import UnixSignals

/// The services of `serve --http`, run by one `ServiceGroup` that owns the signals: SIGTERM,
/// SIGINT or SIGHUP starts a graceful shutdown, and the group stops its services in reverse order.
///
/// 1. The HTTP front door stops taking connections at once; the commands running give it
///    `shutdownGrace` to finish, then they are killed and the sessions closed, which ends their
///    streams and so the open requests.
/// 2. The idle expiry stops.
/// 3. `ProcessesService` kills whatever is left and removes the cgroups.
///
/// Should a client hold a connection open past the grace and `lastResort`, the group cancels
/// what is left, so a shutdown is bounded whatever clients do.
enum ServerLifecycle {
    static let lastResort: Duration = .seconds(5)

    static func run(app: some Service, sessions: HTTPSessions, options: HTTPServeOptions, logger: Logger) async throws {
        let processes = ProcessesService()
        let front = FrontDoor(app: app, grace: options.shutdownGrace, logger: logger) {
            processes.killRunning()
            await sessions.closeAll()
        }
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: processes), .init(service: IdleExpiry(sessions: sessions, idle: options.idleTimeout)), .init(service: front)],
            gracefulShutdownSignals: [.sigterm, .sigint, .sighup], logger: logger)
        configuration.maximumGracefulShutdownDuration = options.shutdownGrace + lastResort
        configuration.maximumCancellationDuration = lastResort
        try await ServiceGroup(configuration: configuration).run()
        await sessions.closeAll()
    }
}

/// The HTTP application with the shutdown grace beside it: both see the same graceful shutdown,
/// the application to stop listening and drain, the grace to end the commands that hold it up.
private struct FrontDoor<App: Service>: Service {
    let app: App
    let grace: Duration
    let logger: Logger
    let graceOver: @Sendable () async -> Void

    private enum Ended { case app, grace }

    func run() async throws {
        try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                try await app.run()
                return .app
            }
            group.addTask {
                try await gracefulShutdown()
                try await Task.sleep(for: grace)
                logger.info("shutdown: the \(grace) grace is over; killing the commands still running and closing the sessions")
                await graceOver()
                return .grace
            }
            while let ended = try await group.next(), ended != .app {}
            group.cancelAll()
        }
    }
}

/// Closes sessions unused for `idle`, checking a few times per idle period (at least every 30 s).
private struct IdleExpiry: Service {
    let sessions: HTTPSessions
    let idle: Duration

    func run() async {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: min(idle / 4, .seconds(30))) }
            } catch {
                return
            }
            await sessions.expire(idle: idle)
        }
    }
}
