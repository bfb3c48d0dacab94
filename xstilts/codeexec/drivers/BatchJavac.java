// Batch compilation for `xstilts code-eval` (xstilts/codeexec/batch.py): compiles each program folder as `javac ARGS` run in that folder would
// (the JDK's own javac, through javax.tools, with the same arguments), one folder after another in this one JVM, so
// the JVM starts and javac warms up once per batch. Each compilation is javac's own, with a fresh context; the class
// path is the program's folder (javac's default, `.`, in the folder) and class files go beside the source, as there.
// No annotation processors: none can be on a folder that holds only the program's source.
//
// java BatchJavac RESULTS TIMEOUT_S N DIR... -- JAVAC_ARG...
// For each DIR: RESULTS/DIR.out, RESULTS/DIR.err (javac's output, the folder's path taken out of file names), then
// RESULTS/DIR.exit (javac's exit status). A program whose compile threw or took longer than TIMEOUT_S gets no .exit:
// the evaluator compiles it on its own.

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

public final class BatchJavac {
    public static void main(String[] argv) throws IOException {
        int count = argv.length >= 3 ? Integer.parseInt(argv[2]) : -1;
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        if (count < 0 || argv.length < 4 + count || !"--".equals(argv[3 + count]) || javac == null) {
            System.err.println(javac == null ? "BatchJavac: no system Java compiler (a JRE, not a JDK?)"
                               : "usage: java BatchJavac RESULTS TIMEOUT_S N DIR... -- JAVAC_ARG...");
            System.exit(2);
        }
        Path results = Paths.get(argv[0]).toAbsolutePath();
        long timeoutNanos = (long) (Double.parseDouble(argv[1]) * 1e9);
        List<String> dirs = Arrays.asList(argv).subList(3, 3 + count);
        List<String> args = Arrays.asList(argv).subList(4 + count, argv.length);
        Charset charset = Charset.defaultCharset();
        for (String dir : dirs) {
            Path folder = Paths.get(dir).toAbsolutePath();
            List<String> full = new ArrayList<>(List.of("-cp", folder.toString(), "-proc:none"));
            List<String[]> renames = new ArrayList<>();
            for (String arg : args) {
                if (arg.endsWith(".java")) {
                    String absolute = folder.resolve(arg).toString();
                    renames.add(new String[] {absolute, arg});
                    full.add(absolute);
                } else {
                    full.add(arg);
                }
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            long start = System.nanoTime();
            int status;
            try {
                status = javac.run(null, out, err, full.toArray(new String[0]));
            } catch (Throwable t) {
                continue;
            }
            if (System.nanoTime() - start > timeoutNanos) {
                continue;
            }
            Files.write(results.resolve(dir + ".out"), relative(out, renames, charset));
            Files.write(results.resolve(dir + ".err"), relative(err, renames, charset));
            Files.write(results.resolve(dir + ".exit"), (status + "\n").getBytes(charset));
        }
    }

    private static byte[] relative(ByteArrayOutputStream stream, List<String[]> renames, Charset charset) {
        String text = new String(stream.toByteArray(), charset);
        for (String[] rename : renames) {
            text = text.replace(rename[0], rename[1]);
        }
        return text.getBytes(charset);
    }
}
