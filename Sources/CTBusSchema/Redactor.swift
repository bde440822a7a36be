import Foundation

/// Removes the fields a partial Member State restriction names (see `RedactablePaths`) from a
/// payload: the copy the broker stores for nodes outside the restriction's allowed list.
public enum Redactor {
    /// The payload without the fields at `paths`. Unknown paths cannot reach here: the
    /// validator refuses them at publication.
    public static func redact(_ payload: BusMessage.OneOf_Payload, paths: [String]) -> BusMessage.OneOf_Payload {
        var payload = payload
        for path in Set(paths) { RedactablePaths.fields[path]?.clear(&payload) }
        return payload
    }
}
