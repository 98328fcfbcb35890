-- Version 14: an epoch close adds the epoch's per-payout totals to the last close's balances
-- instead of summing the whole ledger (which grows by a row a batch, for ever) on the writer's
-- connection, and a node's points are read from per-node totals instead of its every ledger row.
-- The totals (per epoch and payout key, per node and epoch) are kept by a trigger on ledger
-- inserts; here they are summed once from the ledger as it is, with the balances through the
-- last closed epoch. (All are recomputed whole: a database put back to an earlier version by hand
-- may still hold them.)
CREATE TABLE IF NOT EXISTS ledger_totals (
    epoch   INTEGER NOT NULL,
    payout  TEXT NOT NULL,
    amount  INTEGER NOT NULL,
    PRIMARY KEY (epoch, payout)
) WITHOUT ROWID;
DELETE FROM ledger_totals;
INSERT INTO ledger_totals(epoch, payout, amount)
    SELECT epoch, payout, SUM(amount) FROM ledger GROUP BY epoch, payout;
CREATE TABLE IF NOT EXISTS node_ledger_totals (
    node    TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    amount  INTEGER NOT NULL,
    PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
DELETE FROM node_ledger_totals;
INSERT INTO node_ledger_totals(node, epoch, amount)
    SELECT node, epoch, SUM(amount) FROM ledger GROUP BY node, epoch;
DROP TRIGGER IF EXISTS ledger_totals_add;
CREATE TRIGGER ledger_totals_add AFTER INSERT ON ledger
BEGIN
    INSERT INTO ledger_totals(epoch, payout, amount) VALUES (NEW.epoch, NEW.payout, NEW.amount)
    ON CONFLICT(epoch, payout) DO UPDATE SET amount = amount + excluded.amount;
    INSERT INTO node_ledger_totals(node, epoch, amount) VALUES (NEW.node, NEW.epoch, NEW.amount)
    ON CONFLICT(node, epoch) DO UPDATE SET amount = amount + excluded.amount;
END;
CREATE TABLE IF NOT EXISTS epoch_balances (
    epoch    INTEGER NOT NULL,
    payout   TEXT NOT NULL,
    balance  INTEGER NOT NULL,
    PRIMARY KEY (epoch, payout)
) WITHOUT ROWID;
DELETE FROM epoch_balances;
INSERT INTO epoch_balances(epoch, payout, balance)
    SELECT last.epoch, t.payout, SUM(t.amount)
    FROM (SELECT MAX(epoch) AS epoch FROM epochs) AS last
    JOIN ledger_totals AS t ON t.epoch <= last.epoch
    WHERE last.epoch IS NOT NULL
    GROUP BY t.payout;
