import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * Reads every znode under ROOT with the official client: {@code multi()} of read ops
 * (multiRead), BATCH operations per request, IN_FLIGHT requests outstanding, level by
 * level (getData for a level, then getChildren where numChildren > 0).
 *
 * <p>Usage: {@code java MultiReader HOSTS ROOT [BATCH]}; prints nodes, bytes, seconds.
 */
public final class MultiReader {
    private static final int IN_FLIGHT = 8;

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 500;
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hosts, 30000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        connected.await();
        long start = System.nanoTime();
        long nodes = 0;
        long bytes = 0;
        List<String> level = Collections.singletonList(root);
        while (!level.isEmpty()) {
            List<List<OpResult>> data = run(zk, level, batch, true);
            List<String> withChildren = new ArrayList<>();
            int i = 0;
            for (List<OpResult> results : data) {
                for (OpResult result : results) {
                    String path = level.get(i++);
                    if (result instanceof OpResult.GetDataResult) {
                        OpResult.GetDataResult got = (OpResult.GetDataResult) result;
                        nodes++;
                        bytes += got.getData() == null ? 0 : got.getData().length;
                        if (got.getStat().getNumChildren() > 0) {
                            withChildren.add(path);
                        }
                    }
                }
            }
            List<List<OpResult>> listings = run(zk, withChildren, batch, false);
            List<String> next = new ArrayList<>();
            i = 0;
            for (List<OpResult> results : listings) {
                for (OpResult result : results) {
                    String path = withChildren.get(i++);
                    if (result instanceof OpResult.GetChildrenResult) {
                        List<String> children = ((OpResult.GetChildrenResult) result).getChildren();
                        Collections.sort(children);
                        String prefix = path.equals("/") ? "/" : path + "/";
                        for (String child : children) {
                            next.add(prefix + child);
                        }
                    }
                }
            }
            level = next;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("nodes=%d bytes=%d seconds=%.3f%n", nodes, bytes, seconds);
        zk.close();
    }

    /** One multi() per BATCH paths, IN_FLIGHT at a time; the results in order. */
    private static List<List<OpResult>> run(ZooKeeper zk, List<String> paths, int batch, boolean data)
            throws Exception {
        int batches = (paths.size() + batch - 1) / batch;
        List<List<OpResult>> out = new ArrayList<>(Collections.nCopies(batches, null));
        Semaphore window = new Semaphore(IN_FLIGHT);
        CountDownLatch done = new CountDownLatch(batches);
        AtomicReference<Exception> failed = new AtomicReference<>();
        for (int b = 0; b < batches; b++) {
            List<Op> ops = new ArrayList<>(batch);
            for (String path : paths.subList(b * batch, Math.min(paths.size(), (b + 1) * batch))) {
                ops.add(data ? Op.getData(path) : Op.getChildren(path));
            }
            window.acquire();
            final int index = b;
            zk.multi(ops, (rc, path, ctx, results) -> {
                if (rc != KeeperException.Code.OK.intValue()) {
                    failed.compareAndSet(null, KeeperException.create(KeeperException.Code.get(rc)));
                } else {
                    out.set(index, results);
                }
                window.release();
                done.countDown();
            }, null);
        }
        done.await();
        if (failed.get() != null) {
            throw failed.get();
        }
        return out;
    }
}
