import Foundation
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

extension HTTPServeOptions {
    /// HTTP/1 with the request deadline and an idle timeout for kept-alive connections; every
    /// connection shares one gate.
    func serverBuilder(gate: ConnectionGate) -> HTTPServerBuilder {
        let deadline = TimeAmount.nanoseconds(Int64(requestTimeout / .nanoseconds(1)))
        return .http1(configuration: .init(
            additionalChannelHandlers: [RequestDeadline(limit: deadline, gate: gate)], idleTimeout: .seconds(Int64(idleTimeout / .seconds(1)))))
    }

    /// A hard bound on open descriptors: the gate keeps `maxConnections` by closing slow ones, and
    /// only past twice that do new connections wait in the listen queue.
    var connectionLimit: any AvailableConnectionsDelegate { MaximumAvailableConnections(maxConnections * 2) }
}

/// The server's connections, by whether their client still owes a complete request. Over
/// `maxConnections`, a new connection closes the one that has owed its request longest (a
/// slowloris trickling heads or bodies, an idle keep-alive) instead of waiting behind it: however
/// many slow connections one client opens, a fresh client is answered at once. A connection whose
/// request is complete (the server is working on it, or streaming its answer) is never closed.
final class ConnectionGate: Sendable {
    private struct State {
        var serial = 0
        /// Open connections: their channel, and since when they owe a request (nil: the server owes the answer).
        var open: [Int: (channel: any Channel, owing: NIODeadline?)] = [:]
    }
    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    /// Counts a new connection in; returns its key.
    func enter(_ channel: any Channel) -> Int {
        let (key, victim): (Int, (any Channel)?) = state.withLock { state in
            state.serial += 1
            let key = state.serial
            state.open[key] = (channel, .now())
            guard state.open.count > limit else { return (key, nil) }
            let oldest = state.open.filter { $0.key != key && $0.value.owing != nil }.min { $0.value.owing! < $1.value.owing! }
            guard let oldest else { return (key, nil) }
            state.open[oldest.key] = nil
            return (key, oldest.value.channel)
        }
        victim?.close(promise: nil)
        return key
    }

    /// The client sent a whole request (`owing` false), or got its whole answer (true).
    func mark(_ key: Int, owing: Bool) {
        state.withLock { state in
            guard state.open[key] != nil else { return }
            state.open[key]?.owing = owing ? .now() : nil
        }
    }

    func leave(_ key: Int) { state.withLock { _ = $0.open.removeValue(forKey: key) } }
}

/// Closes a connection whose client is too slow to send a request: its headers must arrive within
/// `limit` of the connection opening (or of the previous response ending), and its body within
/// `limit` of its headers. A slowloris client, trickling bytes to hold connections open, is cut off;
/// a response that streams for minutes (an SSE stream) is never timed.
final class RequestDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limit: TimeAmount
    private let gate: ConnectionGate
    private var key: Int?
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount, gate: ConnectionGate) {
        self.limit = limit
        self.gate = gate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        key = gate.enter(context.channel)
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if let key { gate.leave(key) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context)  // now the body's clock
        case .body: break
        case .end:
            timer?.cancel()
            timer = nil
            if let key { gate.mark(key, owing: false) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The response is complete: the next request's headers are on the clock.
        if case .end = unwrapOutboundIn(data) {
            arm(context)
            if let key { gate.mark(key, owing: true) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}
