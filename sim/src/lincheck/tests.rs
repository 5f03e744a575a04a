use super::*;
use crate::models::counter::{random_history, CounterModel};
use crate::models::register::RegisterModel;

fn op(client: u64, key: u64, read: bool, command: String, invoke: u64, completion: Completion) -> Operation {
    let request = invoke * 10 + client;
    let op = Op { key, read, command: Bytes::from(command) };
    Operation { client, request, node: 1, op, invoke, completion, witness: None }
}

fn returned(at: u64, value: i64) -> Completion {
    Completion::Returned { at, response: Bytes::from(value.to_string()) }
}

fn add(client: u64, key: u64, delta: i64, invoke: u64, ret: u64, result: i64) -> Operation {
    op(client, key, false, format!("add {key} {delta}"), invoke, returned(ret, result))
}

fn read(client: u64, key: u64, invoke: u64, ret: u64, result: i64) -> Operation {
    op(client, key, true, key.to_string(), invoke, returned(ret, result))
}

fn pending_add(invoke: u64, delta: i64) -> Operation {
    op(0, 0, false, format!("add 0 {delta}"), invoke, Completion::Unknown)
}

fn counters(history: &[Operation]) -> Result<(), Violation> {
    check(&CounterModel, history)
}

#[test]
fn sequential_and_concurrent_histories_that_make_sense_pass() {
    assert_eq!(counters(&[add(0, 0, 2, 0, 1, 2), read(1, 0, 2, 3, 2), add(0, 0, 3, 4, 5, 5)]), Ok(()));
    // Two overlapping adds may take effect in either order.
    assert_eq!(counters(&[add(0, 0, 1, 0, 10, 3), add(1, 0, 2, 1, 9, 2), read(2, 0, 11, 12, 3)]), Ok(()));
    // A read concurrent with an add may see it or not.
    assert_eq!(counters(&[add(0, 0, 1, 0, 10, 1), read(1, 0, 1, 2, 0)]), Ok(()));
    assert_eq!(counters(&[add(0, 0, 1, 0, 10, 1), read(1, 0, 1, 2, 1)]), Ok(()));
}

#[test]
fn a_stale_read_or_an_impossible_result_fails_naming_the_key() {
    let stale = [add(0, 7, 1, 0, 1, 1), read(1, 7, 2, 3, 0)];
    let violation = counters(&stale).unwrap_err();
    assert_eq!((violation.key, violation.operations), (7, 2));
    let impossible = [add(0, 0, 1, 0, 1, 1), add(1, 0, 1, 2, 3, 1)];
    assert!(counters(&impossible).is_err());
    // Keys are independent: a good key does not hide a bad one.
    assert!(counters(&[add(0, 1, 5, 0, 1, 5), add(0, 2, 1, 2, 3, 1), read(1, 2, 4, 5, 2)]).is_err());
}

#[test]
fn a_failure_names_only_the_operations_that_cannot_be_ordered() {
    // Busy traffic on the key, then one stale read among good ones: the explanation is the
    // read and the add it missed (whose answer does not matter, only that it had returned).
    let mut history = vec![add(0, 0, 1, 0, 1, 1), read(1, 0, 2, 3, 1), add(2, 0, 2, 4, 5, 3)];
    history.push(read(1, 0, 6, 7, 3));
    history.push(add(0, 0, 4, 10, 11, 7));
    history.push(read(2, 0, 12, 13, 3)); // Stale: 7 was returned at 11.
    history.push(read(1, 0, 14, 15, 7));
    history.push(add(0, 0, 1, 16, 17, 8));
    let violation = counters(&history).unwrap_err();
    assert_eq!(violation.culprits, vec![(4, Fact::Returned), (5, Fact::Response)], "{violation}");
    assert!(violation.lines[1].contains(&format!("#{}", history[5].request)), "{violation}");
    assert!(violation.lines[1].contains("Read -> 3"), "{violation}");
    assert!(violation.to_string().contains("these 2 cannot be ordered"), "{violation}");
}

#[test]
fn large_random_histories_pass_and_one_wrong_read_fails() {
    for seed in 0..5 {
        assert_eq!(counters(&random_history(seed, 2000, 5, 1, false)), Ok(()), "seed {seed}");
        let history = random_history(seed, 2000, 5, 1, true);
        let violation = counters(&history).unwrap_err();
        // The read of -1 is the one answer no order explains: of the 2,000 operations, it is
        // the only one whose answer is named (with updates it comes after).
        let answers: Vec<usize> = violation.culprits.iter().filter(|c| c.1 == Fact::Response).map(|c| c.0).collect();
        assert_eq!(answers.len(), 1, "seed {seed}: {violation}");
        assert_eq!(history[answers[0]].response().map(|r| &r[..]), Some(&b"-1"[..]), "seed {seed}");
        assert!(violation.culprits.iter().all(|c| !history[c.0].op.read || c.1 == Fact::Response));
    }
}

#[test]
fn an_operation_that_never_completed_may_or_may_not_have_happened() {
    assert_eq!(counters(&[pending_add(0, 5), read(1, 0, 10, 11, 5)]), Ok(()));
    assert_eq!(counters(&[pending_add(0, 5), read(1, 0, 10, 11, 0)]), Ok(()));
    assert_eq!(counters(&[pending_add(0, 5), read(1, 0, 10, 11, 0), read(1, 0, 12, 13, 5)]), Ok(()));
    // Once seen, it cannot be unseen.
    assert!(counters(&[pending_add(0, 5), read(1, 0, 10, 11, 5), read(1, 0, 12, 13, 0)]).is_err());
    // Nor can it take effect before it was invoked.
    assert!(counters(&[pending_add(20, 5), read(1, 0, 10, 11, 5)]).is_err());
}

#[test]
fn an_unanswered_append_that_was_applied_happened_with_its_response() {
    let applied = op(0, 0, false, "add 0 5".into(), 0, Completion::Applied { at: 50, response: Bytes::from("5") });
    assert!(counters(&[applied.clone(), read(1, 0, 10, 11, 0), read(1, 0, 12, 13, 0)]).is_ok());
    let never = Operation { completion: Completion::NotApplied, ..applied.clone() };
    assert!(counters(&[never, read(1, 0, 10, 11, 0), read(1, 0, 100, 101, 0)]).is_ok());
    // Applied, answering 5: a read of 7 afterwards fits no order.
    assert!(counters(&[applied.clone(), read(1, 0, 10, 11, 5), read(1, 0, 12, 13, 7)]).is_err());
    // It had taken effect once a node applied it (at 50): a read after that cannot miss it.
    assert!(counters(&[applied.clone(), read(1, 0, 40, 41, 0), read(1, 0, 45, 60, 0)]).is_ok());
    assert!(counters(&[applied, read(1, 0, 60, 61, 0)]).is_err());
}

#[test]
fn witnesses_order_the_search_without_deciding_it() {
    // `n` puts at once (one per client), all answered later, then a read of the seventh: it
    // must be the last put. Tried earliest return first, the search goes through the subsets
    // of the other puts; in the order of the witnesses (the log's order), it goes straight.
    let burst = |n: u64, witnessed: bool| -> Vec<Operation> {
        let mut history: Vec<Operation> = (0..n)
            .map(|i| {
                let done = Completion::Returned { at: 1_000 + i, response: Bytes::from_static(b"ok") };
                let mut put = op(i, 0, false, format!("put 0 v{i}"), i, done);
                let seq = if i == 7 { n - 1 } else { i - u64::from(i > 7) };
                put.witness = witnessed.then(|| witness_of_update(seq));
                put
            })
            .collect();
        let mut get = op(n, 0, true, "0".into(), 2_000, Completion::Returned { at: 2_001, response: "v7".into() });
        get.witness = witnessed.then(|| witness_of_read(Some(n - 1)));
        history.push(get);
        history
    };
    let search_key =
        |history: &[Operation]| search(&RegisterModel, &decode(&RegisterModel, history).expect("decodes")[&0], 100_000);
    assert_eq!(search_key(&burst(30, true)), Some(true));
    assert_eq!(search_key(&burst(30, false)), None, "more than 100,000 steps without witnesses");
    // A witness that is no linearization decides nothing: the read of the seventh put, claimed
    // before the others, is still found linearizable (a burst of 10: the search goes back).
    let mut wrong = burst(10, true);
    wrong[10].witness = Some(witness_of_read(Some(0)));
    assert_eq!(check(&RegisterModel, &wrong), Ok(()));
    // Nor does one make a history that cannot be linearized pass.
    let mut stale = burst(10, true);
    stale.push(op(11, 0, true, "0".into(), 3_000, Completion::Returned { at: 3_001, response: "v3".into() }));
    assert!(check(&RegisterModel, &stale).is_err());
}

#[test]
fn a_search_past_its_budget_is_undecided_and_hides_no_failure() {
    // The burst of `witnesses_order_the_search_without_deciding_it` without witnesses: more
    // than 100,000 steps. Within that budget it is undecided, not passed nor failed.
    let burst = |n: u64| -> Vec<Operation> {
        let puts = (0..n).map(|i| {
            let done = Completion::Returned { at: 1_000 + i, response: Bytes::from_static(b"ok") };
            op(i, 0, false, format!("put 0 v{i}"), i, done)
        });
        let get = op(n, 0, true, "0".into(), 2_000, Completion::Returned { at: 2_001, response: "v7".into() });
        puts.chain([get]).collect()
    };
    let undecided = Undecided { key: 0, operations: 31, steps: 100_000 };
    assert_eq!(check_within(&RegisterModel, &burst(30), 100_000), Verdict::Undecided(undecided.clone()));
    assert!(undecided.to_string().contains("31 operations on key 0 ran past 100000 steps"), "{undecided}");
    // A smaller burst is decided within the budget (the read of v7 fits after the other puts).
    assert_eq!(check_within(&RegisterModel, &burst(8), 100_000), Verdict::Linearizable);
    // A key that fails is reported even after one whose search ran out, and explained.
    let done = |at| Completion::Returned { at, response: Bytes::from_static(b"ok") };
    let mut both = burst(30);
    both.push(op(40, 1, false, "put 1 a".into(), 0, done(1)));
    both.push(op(40, 1, false, "put 1 b".into(), 2, done(3)));
    both.push(op(40, 1, true, "1".into(), 4, Completion::Returned { at: 5, response: "a".into() }));
    let Verdict::Violation(violation) = check_within(&RegisterModel, &both, 100_000) else { panic!("fails") };
    assert_eq!((violation.key, violation.culprits.len()), (1, 3), "{violation}");
}

#[test]
fn registers_check_puts_and_gets() {
    let put = |client, key, value: &str, invoke, ret| {
        let done = Completion::Returned { at: ret, response: Bytes::from_static(b"ok") };
        op(client, key, false, format!("put {key} {value}"), invoke, done)
    };
    let get = |client, key: u64, value: &'static str, invoke, ret| {
        op(client, key, true, key.to_string(), invoke, Completion::Returned { at: ret, response: Bytes::from(value) })
    };
    let good = [get(0, 1, "", 0, 1), put(0, 1, "a", 2, 3), get(1, 1, "a", 4, 5), put(1, 2, "b", 4, 9)];
    assert_eq!(check(&RegisterModel, &good), Ok(()));
    let lost = [put(0, 1, "a", 0, 1), put(1, 1, "b", 2, 3), get(0, 1, "a", 4, 5)];
    let violation = check(&RegisterModel, &lost).unwrap_err();
    assert_eq!(violation.culprits.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2], "{violation}");
    let garbled = [op(0, 1, false, "set 1 x".into(), 0, Completion::Unknown)];
    assert!(check(&RegisterModel, &garbled).unwrap_err().to_string().contains("cannot decode"));
}

#[test]
fn the_memo_tells_sets_apart_when_their_hashes_meet() {
    let mut memo = Memo::new();
    assert!(memo.insert(5, &[1], 0u8));
    assert!(!memo.insert(5, &[1], 0u8), "the same configuration again");
    assert!(memo.insert(5, &[1], 1u8), "another state");
    assert!(memo.insert(5, &[2], 0u8), "another set with the same hash is not taken for the first");
    assert!(!memo.insert(5, &[2], 0u8));
    // The operations' words (whose xor is a set's hash) are distinct and not zero.
    let words: std::collections::HashSet<u64> = (0..10_000).map(set_word).collect();
    assert_eq!(words.len(), 10_000);
    assert!(!words.contains(&0));
}
