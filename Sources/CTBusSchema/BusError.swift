import Foundation

/// An error of the bus with a stable code: the same code travels in a wire `ErrorReport`, names
/// the command line's error, and is what tests and clients match on. `detail` is written for
/// people and never carries the content of a message.
public struct BusError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: ErrorCode
    public let detail: String
    /// The message concerned, when there is one.
    public let messageId: String?
    /// The SHA-256 of a refused message part from which no message id could be read.
    public let frameSHA256: Data?
    /// For a broken schema rule: which field and which rule, for a form or an import to place
    /// next to its field without reading `detail` apart (which says the same to people).
    public let violation: Violation?

    /// A schema rule a field breaks: `path` as the validator names fields (`findings[2]`,
    /// `visit_dates.end`, `envelope.subject`), `rule` what it must be.
    public struct Violation: Sendable, Equatable {
        public let path: String
        public let rule: String

        public init(path: String, rule: String) {
            self.path = path
            self.rule = rule
        }
    }

    public init(_ code: ErrorCode, _ detail: String, messageId: String? = nil, frameSHA256: Data? = nil, violation: Violation? = nil) {
        self.code = code
        self.detail = detail
        self.messageId = messageId
        self.frameSHA256 = frameSHA256
        self.violation = violation
    }

    /// A broken schema rule: VALIDATION_FAILED saying "`path` `rule`".
    public init(violating path: String, _ rule: String, messageId: String? = nil) {
        self.init(.validationFailed, "\(path) \(rule)", messageId: messageId, violation: Violation(path: path, rule: rule))
    }

    /// The same error about `messageId` (the message it concerns, known only to the caller).
    public func about(_ messageId: String?) -> BusError {
        BusError(code, detail, messageId: messageId, frameSHA256: frameSHA256, violation: violation)
    }

    /// The stable name of the code, as in the schema ("VALIDATION_FAILED").
    public var codeName: String { code.name }

    public var description: String { "\(codeName): \(detail)" }

    /// The error as a wire frame.
    public var report: ErrorReport {
        var report = ErrorReport()
        report.code = code
        report.detail = detail
        report.messageID = messageId ?? ""
        if let frameSHA256 { report.frameSha256 = frameSHA256 }
        return report
    }

    public init(_ report: ErrorReport) {
        self.init(report.code, report.detail, messageId: report.messageID.isEmpty ? nil : report.messageID,
                  frameSHA256: report.frameSha256.isEmpty ? nil : report.frameSha256)
    }
}

extension ErrorCode {
    /// The schema's name of the code ("NOT_PERMITTED").
    public var name: String {
        switch self {
        case .unspecified: "ERROR_CODE_UNSPECIFIED"
        case .malformedFrame: "MALFORMED_FRAME"
        case .unsupportedVersion: "UNSUPPORTED_VERSION"
        case .notAuthenticated: "NOT_AUTHENTICATED"
        case .noSession: "NO_SESSION"
        case .validationFailed: "VALIDATION_FAILED"
        case .notPermitted: "NOT_PERMITTED"
        case .needToKnowRequired: "NEED_TO_KNOW_REQUIRED"
        case .messageTooLarge: "MESSAGE_TOO_LARGE"
        case .conflictingDuplicate: "CONFLICTING_DUPLICATE"
        case .internal: "INTERNAL"
        case .sessionReplaced: "SESSION_REPLACED"
        case .unknownSigningKey: "UNKNOWN_SIGNING_KEY"
        case .signatureInvalid: "SIGNATURE_INVALID"
        case .disclosureMismatch: "DISCLOSURE_MISMATCH"
        case .sealedToMismatch: "SEALED_TO_MISMATCH"
        case .sealInvalid: "SEAL_INVALID"
        case .nonCanonical: "NON_CANONICAL"
        case .UNRECOGNIZED(let value): "UNRECOGNIZED_\(value)"
        }
    }
}
