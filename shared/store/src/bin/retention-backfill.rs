//! `retention-backfill --table NAME [--retention-days N]`: gives every item written
//! before retention existed its TTL (`Store::backfill_retention`), by the rule the
//! functions now follow. Run it once after upgrading a deployment that holds cases
//! written by an earlier release, with the functions' `RETENTION_DAYS`, and AWS
//! credentials that may Scan, Query, GetItem and UpdateItem the table (the AWS SDK's
//! usual settings: `AWS_PROFILE`, `AWS_REGION`, ...). Safe to repeat and to run beside
//! the functions.
//!
//! Exit 0: the table read through; the last line of stdout says what was given a TTL.
//! Exit 1: a DynamoDB error (run it again: it starts over, and what is done is skipped).
//! Exit 2: bad arguments.

use std::process::ExitCode;

use gateway_store::{Retention, Store};

const USAGE: &str =
    "usage: retention-backfill --table NAME [--retention-days N]   (N: the functions' RETENTION_DAYS, default 1827)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (table, retention) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("retention-backfill: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Store::new(gateway_store::dynamodb_client(&sdk).await, table.clone()).with_retention(retention);
    let (mut cases, mut items, mut orphans, mut pages) = (0, 0, 0, 0);
    let mut cursor = None;
    loop {
        let page = match store.backfill_retention(cursor, time::OffsetDateTime::now_utc()).await {
            Ok(page) => page,
            Err(e) => {
                eprintln!("retention-backfill: {table}: {e}");
                return ExitCode::from(1);
            }
        };
        pages += 1;
        cases += page.cases;
        items += page.items;
        orphans += page.orphans;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    println!(
        "retention-backfill: {table}: read through in {pages} page(s); {cases} case(s) bounded (RETENTION_DAYS={} after their last write), {items} item(s) given a TTL, {orphans} item(s) of no stored case left as they were",
        retention.as_days()
    );
    ExitCode::SUCCESS
}

fn parse(args: &[String]) -> Result<(String, Retention), String> {
    let (mut table, mut days) = (None, Retention::DEFAULT_DAYS);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--table" => table = Some(value.clone()),
            "--retention-days" => {
                days = value.parse().map_err(|_| format!("--retention-days: not a number: {value}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let table = table.ok_or("--table is required")?;
    let retention = Retention::days(days).ok_or_else(|| {
        format!("--retention-days must be {} to {}, is {days}", Retention::MIN_DAYS, Retention::MAX_DAYS)
    })?;
    Ok((table, retention))
}
