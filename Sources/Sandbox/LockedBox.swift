import Synchronization

/// A value handed between threads under a lock: a `Mutex` that an escaping closure (a `Thread`'s
/// body) can hold, as a class.
public final class LockedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }

    /// Changes the value and reads the result in one step under the lock.
    public func update<T>(_ body: (inout Value) -> T) -> T {
        mutex.withLock { body(&$0) }
    }
}
