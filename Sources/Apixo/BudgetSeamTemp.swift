// TEMPORARY: the seam of /work/wt/SCHEDULER-SEAMS.md until the scheduler lands it. Delete on rebase.
struct SlotLease: Hashable { let id: UInt64 }

protocol Budget: AnyObject {
    var requestsPerWindow: Int { get }
    var window: Double { get }
    var maxSlots: Int { get }
    func nextRequestTime(now: Double) -> Double
    func takeRequest(now: Double) -> Bool
    func pause(until: Double)
    func slotAvailable(now: Double) -> Bool
    func takeSlot(now: Double, hold: Double) -> SlotLease?
    func renew(_ lease: SlotLease, now: Double, hold: Double)
    func release(_ lease: SlotLease, now: Double)
    func requestsInWindow(now: Double) -> Int
    var slotsHeld: Int { get }
    func tick(now: Double) -> Double?
}
