use tinyraftplus::core::{NodeId, Response, Seq};
use tinyraftplus::testkit::Cluster;

#[test]
fn three_nodes_elect_and_replicate() {
    let mut c = Cluster::new(3, |_| {});
    c.trace = true;
    c.elect(NodeId(1));
    assert_eq!(c.leader(), Some(NodeId(1)));
    let r1 = c.append(NodeId(1), "a");
    let r2 = c.append(NodeId(2), "b");
    c.stabilize();
    let r3 = c.append(NodeId(3), "c");
    c.stabilize();
    for line in &c.transcript {
        println!("{line}");
    }
    assert_eq!(c.reply(NodeId(1), r1), Some(&Ok(Response::Appended { seq: Seq(1), responses: vec![] })));
    assert_eq!(c.reply(NodeId(2), r2), Some(&Ok(Response::Appended { seq: Seq(2), responses: vec![] })));
    assert_eq!(c.reply(NodeId(3), r3), Some(&Ok(Response::Appended { seq: Seq(3), responses: vec![] })));
}
