import Foundation

/// CPU time of this process's threads, from /proc (Linux): each thread's `schedstat` gives the
/// nanoseconds it ran. (`stat` counts clock ticks of 10 ms, too coarse for a round of a few
/// seconds spread over several threads.)
enum ThreadCPU {
    /// The CPU seconds of every thread of this process, by thread id, with its name.
    static func snapshot() -> [Int: (name: String, seconds: Double)] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return [:] }
        var threads: [Int: (name: String, seconds: Double)] = [:]
        for task in tasks {
            guard let id = Int(task),
                  let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  let seconds = seconds(task: task) else { continue }
            threads[id] = (name.trimmingCharacters(in: .whitespacesAndNewlines), seconds)
        }
        return threads
    }

    /// The CPU seconds of one thread, or nil when it has ended.
    private static func seconds(task: String) -> Double? {
        if let schedstat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8),
           let nanoseconds = schedstat.split(separator: " ").first.flatMap({ Double($0) }) {
            return nanoseconds / 1e9
        }
        // Without schedstat (a kernel built without it): utime and stime, in clock ticks.
        guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The CPU seconds of the threads named `name`, summed (nil when there is none).
    static func seconds(named name: String) -> Double? {
        let matching = snapshot().values.filter { $0.name == name }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.seconds }
    }

    /// The CPU seconds the calling thread has run.
    static func thisThread() -> Double {
        var usage = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &usage)
        return Double(usage.tv_sec) + Double(usage.tv_nsec) / 1e9
    }
}

/// CPU per message of each party of a bus running in this process, over one stretch of work:
/// the publisher (signing and journaling in the calling thread, then its node's loop), the
/// broker's loop and ZAP handler, one recipient's loop, libzmq's I/O threads (CURVE and TCP, of
/// every party together: their threads share one name), and the unnamed threads besides the
/// calling one: libdispatch's workers, where every store and journal runs its checkpoints and the
/// broker and the nodes run checks side by side.
struct PartyCPU {
    private let start: [Int: (name: String, seconds: Double)]
    private let publisherNode: String
    private let recipientNode: String
    /// The calling thread's id, from /proc/thread-self ("PID/task/TID").
    private let caller = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"))
        .flatMap { $0.split(separator: "/").last.flatMap { Int($0) } }

    init(publisher: String, recipient: String) {
        start = ThreadCPU.snapshot()
        publisherNode = "node-\(publisher)"
        recipientNode = "node-\(recipient)"
    }

    struct Figures {
        var publisher: Double
        var broker: Double
        var recipient: Double
        var libzmqIO: Double
        var workers: Double
    }

    /// Microseconds per message since `init`; `publishing`: the calling thread's CPU seconds spent
    /// publishing.
    func perMessage(_ messages: Int, publishing: Double) -> Figures {
        let end = ThreadCPU.snapshot()
        // A thread's time since `init` (threads that started later count from zero).
        func spent(_ matches: (_ id: Int, _ name: String) -> Bool) -> Double {
            end.filter { matches($0.key, $0.value.name) }.reduce(0) { total, thread in
                total + thread.value.seconds - (start[thread.key]?.seconds ?? 0)
            }
        }
        let micros = { (seconds: Double) in seconds / Double(messages) * 1e6 }
        let named = { (name: String) in
            name.hasPrefix("node-") || name.hasPrefix("ZMQbg/") || ["broker", "zap-handler", "baseline-fwd"].contains(name)
        }
        return Figures(publisher: micros(publishing + spent { $1 == publisherNode }),
                       broker: micros(spent { $1 == "broker" || $1 == "zap-handler" }),
                       recipient: micros(spent { $1 == recipientNode }),
                       libzmqIO: micros(spent { $1.hasPrefix("ZMQbg/IO") }),
                       workers: micros(spent { $0 != caller && !named($1) }))
    }
}
