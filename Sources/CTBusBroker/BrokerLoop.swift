import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Metrics
import Foundation
import Logging
import ZeroMQ

/// The broker's loop: the shell around `BrokerCore`. It owns the ROUTER socket and lives on the
/// broker thread only. It polls, reads, feeds the core, and performs what the core returns:
/// frames to send, metrics, log lines, status, and one store operation at a time, whose result
/// goes back to the core.
final class BrokerLoop {
    let socket: ZMQSocket
    private let store: any BrokerStorage
    private let logger: Logger
    /// Lines a peer or a lasting fault can repeat: once per kind and period, then summed up.
    private var throttled: ThrottledLogger
    private let metrics: BrokerMetrics
    private let status: BrokerStatus
    private let sharedRegistry: SharedRegistry
    private var core: BrokerCore
    /// The reload the core is applying (one at a time).
    private var reload: ReloadRequest?
    private let pollMilliseconds: Int
    /// Most frames handled per wake-up; publications among them share one store transaction.
    private let batchLimit = 512

    /// The broker's ROUTER socket, bound: the first thing a broker does, so that a taken port
    /// stops it before it writes anything.
    static func bind(context: ZMQContext, configuration: BrokerConfiguration, keyPair: CurveKeyPair) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .router)
        do {
            try socket.setRouterMandatory(true)
            try socket.makeCurveServer(secretKey: keyPair.secretKey)
            try socket.setZAPDomain("ctbus")
            // libzmq cuts off a peer whose message is far over the limit; up to that, the broker
            // reads it and answers MESSAGE_TOO_LARGE.
            try socket.setMaxMessageSize(Int64(configuration.maxMessageBytes) * 4 + 65_536)
            try socket.setHighWaterMarks(send: 100_000, receive: 100_000)
            try socket.bind(configuration.endpoint)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    init(socket: ZMQSocket, configuration: BrokerConfiguration, registry: SharedRegistry, store: any BrokerStorage, logger: Logger,
         metrics: any MetricsFactory, status: BrokerStatus) {
        self.socket = socket
        sharedRegistry = registry
        let current = registry.current
        self.status = status
        self.metrics = BrokerMetrics(factory: metrics, nodes: current.entries.map(\.profile.id))
        self.store = store
        self.logger = logger
        throttled = ThrottledLogger(logger)
        pollMilliseconds = min(50, configuration.heartbeatIntervalMilliseconds)
        let marks = Self.recordRegistryAtStart(current, store: store, logger: logger)
        core = BrokerCore(limits: BrokerCore.Limits(configuration), registry: current, rejudgeThrough: marks)
    }

    func run(until thread: LoopThread) {
        let acknowledgementPoll = Int(core.limits.acknowledgementDelay / .milliseconds(1))
        while !thread.isStopping {
            do {
                if reload == nil, let request = sharedRegistry.next() {
                    reload = request
                    perform(core.reload(request.registry, source: request.source, origin: request.origin, at: .now))
                }
                let timeout = core.acknowledgementsPending ? acknowledgementPoll : pollMilliseconds
                if try ZMQSocket.poll([socket], timeoutMilliseconds: timeout)[0] {
                    try drain()
                }
                let now = Moment.now
                // A session is judged silent only once every frame that has arrived is read (4.4).
                let waiting = try core.hasOverdueSession(at: now) && ZMQSocket.poll([socket], timeoutMilliseconds: 0)[0]
                perform(core.tick(at: now, framesWaiting: waiting))
                throttled.flush()
            } catch let error as ZMQError where error.isTerminated {
                break
            } catch {
                logger.error("broker loop error", metadata: ["error": "\(error)"])
            }
        }
        perform(core.stopping(at: .now))
        socket.close()
        logger.info("broker stopped")
    }

    private func drain() throws {
        for _ in 0..<batchLimit {
            guard let message = try socket.receive(dontWait: true) else { break }
            perform(core.received(message.frames, userId: message.userId, at: .now))
        }
        perform(core.drained(at: .now))
    }

    // MARK: Performing a step

    /// Performs a step's effects, then its store operation, and so on until the core asks for
    /// nothing more.
    private func perform(_ first: BrokerCore.Step) {
        var step = first
        while true {
            // Connections a send failed to in this step: nothing more goes to them, so a node never
            // receives a later sequence before an earlier one.
            var failed = Set<BrokerCore.Connection>()
            for effect in step.effects { apply(effect, failed: &failed) }
            guard let request = step.request else { return }
            step = core.completed(execute(request), at: .now)
        }
    }

    private func apply(_ effect: BrokerCore.Effect, failed: inout Set<BrokerCore.Connection>) {
        switch effect {
        case .send(let bytes, let connection):
            guard failed.isEmpty || !failed.contains(connection) else { return }
            if let error = send(bytes, to: connection) {
                failed.insert(connection)
                applyQuietly(core.sendFailed(to: connection, sequence: nil, unreachable: error.isHostUnreachable, error: "\(error)"))
            }
        case .deliver(let bytes, let connection, let node, let sequence, let inFlight):
            guard failed.isEmpty || !failed.contains(connection) else {
                applyQuietly(core.sendFailed(to: connection, sequence: sequence, unreachable: false, error: nil))
                return
            }
            if let error = send(bytes, to: connection) {
                failed.insert(connection)
                applyQuietly(core.sendFailed(to: connection, sequence: sequence, unreachable: error.isHostUnreachable, error: "\(error)"))
            } else {
                metrics.delivered(to: node)
                metrics.inFlight(node, inFlight)
            }
        case .count(let count):
            metrics.apply(count)
        case .log(let line):
            throttled.write(line)
        case .status(let node, let change):
            status.update(node) { state in
                switch change {
                case .session(let connected, let since):
                    state.connected = connected
                    state.since = since
                    state.inFlight = 0
                case .inFlight(let count, let acknowledgedAt):
                    state.inFlight = count
                    if let acknowledgedAt { state.lastAcknowledgedAt = acknowledgedAt }
                }
            }
        case .registryInForce(let registry):
            sharedRegistry.replace(with: registry)
            metrics.addNodes(registry.entries.map(\.profile.id))
        case .reloadFinished(let result):
            reload?.finish(result)
            reload = nil
        }
    }

    /// The effects of a failed send's step: metrics and log lines only.
    private func applyQuietly(_ step: BrokerCore.Step) {
        var none = Set<BrokerCore.Connection>()
        for effect in step.effects { apply(effect, failed: &none) }
    }

    /// Sends one frame without waiting; returns the error when libzmq did not take it.
    private func send(_ bytes: [UInt8], to connection: BrokerCore.Connection) -> ZMQError? {
        do {
            try socket.send([connection, bytes], dontWait: true)
            return nil
        } catch {
            return error
        }
    }

    private func execute(_ request: BrokerCore.Request) -> BrokerCore.Completion {
        switch request {
        case .store(let publications, let acknowledgements):
            let started = ContinuousClock.now
            let result = Result { () throws(StoreError) in try store.store(publications, acknowledging: acknowledgements) }
            if case .success = result { // the figures of committed transactions
                metrics.transaction.record(duration: ContinuousClock.now - started)
                metrics.publicationsPerTransaction.record(publications.count)
            }
            return .stored(result)
        case .recordAcknowledgements(let acknowledgements):
            return .acknowledgementsRecorded(Result { () throws(StoreError) in try store.acknowledge(acknowledgements) })
        case .queueBacklog(let node, let date):
            return .backlogQueued(Result { () throws(StoreError) in
                try store.queueBacklog(for: node.id) { envelope, payload in
                    BrokerDecisions.backlogRecipient(envelope: envelope, payload: payload, for: node, at: date)
                }
            })
        case .readQueue(let node, let after, let limit):
            return .queueRead(Result { () throws(StoreError) in try store.pendingDeliveries(for: node, after: after, limit: limit) })
        case .discard(let node, let removals):
            return .discarded(removals.map { removal in
                Result { () throws(StoreError) in
                    try store.discard(nodeId: node, sequence: removal.sequence, messageId: removal.messageId, audit: removal.audit)
                }
            })
        case .revoke(let messageId, let originator, let reason, let statement):
            return .revoked(Result { () throws(StoreError) in
                try store.revoke(messageId: messageId, by: originator, reason: reason, revocation: statement)
            })
        case .clearRejudge(let node, let through):
            return .rejudgeCleared(Result { () throws(StoreError) in try store.clearRejudge(nodeId: node, through: through) })
        case .recordRegistry(let record):
            return .registryRecorded(Result { () throws(StoreError) in
                _ = try store.recordRegistry(source: record.source, outcome: record.outcome, detail: record.detail, registry: record.registry,
                                             changes: record.changes, rejudge: record.rejudge, now: record.at)
            })
        case .readRejudgeMarks:
            return .rejudgeMarksRead(Result { () throws(StoreError) in try store.rejudgeMarks() })
        }
    }
}
