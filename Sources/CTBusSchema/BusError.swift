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

    public init(_ code: ErrorCode, _ detail: String, messageId: String? = nil, frameSHA256: Data? = nil) {
        self.code = code
        self.detail = detail
        self.messageId = messageId
        self.frameSHA256 = frameSHA256
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
