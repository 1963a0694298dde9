import Tools

/// New sessions prepared ahead (the runner's namespaces, idmapped mounts, cgroup and seccomp
/// program), each under a freshly minted handle no client has seen, so that a new client's first
/// call does not wait for them. A pooled session never served anyone: it is handed out once and
/// started then (`Session.beginNow`, so it trusts the repository as it is at that moment, as a
/// session opened then would), and another is prepared in its place.
actor WarmSessions {
    typealias Made = (name: String, session: Session)
    private let target: Int
    private let make: @Sendable () async throws -> Made
    private var ready: [Made] = []
    private var filling = false
    private var closed = false

    /// - Parameters:
    ///   - target: how many to keep ready (0: none, every session is made when asked for).
    ///   - make: a session under a new minted handle.
    init(target: Int, make: @escaping @Sendable () async throws -> Made) {
        self.target = target
        self.make = make
    }

    /// A prepared session when one is ready, else one made now.
    func take() async throws -> Made {
        // The oldest first: none waits on while newer ones are handed out.
        guard !ready.isEmpty else { return try await make() }
        let pooled = ready.removeFirst()
        // A session made just now has its snapshot already; a prepared one takes it now.
        await pooled.session.beginNow()
        return pooled
    }

    /// Prepares sessions in the background until `target` are ready, never more than `room`
    /// (what the session cap leaves).
    func fill(room: Int) {
        guard !filling, !closed, ready.count < min(target, room) else { return }
        filling = true
        Task { await fillNow(room: room) }
    }

    private func fillNow(room: Int) async {
        defer { filling = false }
        while !closed, ready.count < min(target, room) {
            // A failure here shows at the next take, which makes its session itself and says why.
            guard let made = try? await make() else { return }
            await made.session.prepareAhead()
            guard !closed else {
                await made.session.close()
                return
            }
            ready.append(made)
        }
    }

    /// Closes what is ready; nothing more is prepared.
    func closeAll() async {
        closed = true
        for made in ready { await made.session.close() }
        ready = []
    }
}
