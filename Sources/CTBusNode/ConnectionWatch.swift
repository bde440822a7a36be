import ZeroMQ

/// Says, in one clear line, why a node has no session: within the broker timeout of starting
/// (or of losing its session), then again only after a doubling back-off (at most every 10
/// minutes), so a node that cannot connect neither stays silent nor floods its log. It reads
/// the DEALER socket's monitor events: a TCP connection that never completes its CURVE
/// handshake is a broker refusing this node's keys; no connection at all is a broker that is
/// not there.
struct ConnectionWatch {
    let endpoint: String
    let timeout: Duration
    private var waitingSince: ContinuousClock.Instant?
    private var nextReport: Duration
    private var connected = false
    private var handshakeDone = false
    private var handshakeFailures = 0
    private var everConnected = false

    init(endpoint: String, timeout: Duration, now: ContinuousClock.Instant = .now) {
        self.endpoint = endpoint
        self.timeout = timeout
        waitingSince = now
        nextReport = timeout
    }

    mutating func note(_ event: ZMQMonitorEvent.Kind) {
        switch event {
        case .connected:
            connected = true
            everConnected = true
            handshakeDone = false
        case .handshakeSucceeded:
            handshakeDone = true
        case .handshakeFailedAuthentication, .handshakeFailed:
            handshakeFailures += 1
        case .disconnected:
            if connected && !handshakeDone { handshakeFailures += 1 }
            connected = false
            handshakeDone = false
        case .other:
            break
        }
    }

    /// A session opened: nothing to report until it is lost again.
    mutating func sessionOpened() {
        waitingSince = nil
        nextReport = timeout
        handshakeFailures = 0
    }

    /// The session ended: the wait for a new one starts now.
    mutating func sessionLost(now: ContinuousClock.Instant = .now) {
        guard waitingSince == nil else { return }
        waitingSince = now
        nextReport = timeout
        handshakeFailures = 0
    }

    /// The line to log now, if one is due.
    mutating func check(now: ContinuousClock.Instant = .now) -> String? {
        guard let since = waitingSince, now - since >= nextReport else { return nil }
        nextReport = min(nextReport * 2, max(.seconds(600), timeout))
        if handshakeFailures > 0 || (connected && !handshakeDone) {
            return "the broker at \(endpoint) refused the handshake: check brokerPublicKey (or brokerPublicKeyFile) "
                + "and that this node's key is in the registry"
        }
        if handshakeDone {
            return "connected to the broker at \(endpoint), but it does not answer Hello"
        }
        return everConnected
            ? "lost the broker at \(endpoint) and cannot reach it again"
            : "cannot reach the broker at \(endpoint): nothing accepts connections there (is it running, is the address right?)"
    }
}
